"""What does a run show? `report` and `compare`: views over stored run folders, never a re-run."""
