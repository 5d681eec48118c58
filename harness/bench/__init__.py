"""`bench`: a whole benchmark run, from profile and plan to a filled run folder."""
