"""How fast is it, measured fairly? Typed jobs, the timer, and one benchmark cell per process."""
