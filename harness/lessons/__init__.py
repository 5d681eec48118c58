"""`lessons`: the cost of change and vanishing gradients, measured on this code base."""
