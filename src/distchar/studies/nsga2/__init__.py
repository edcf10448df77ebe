"""Multi-objective optimisation: the improved NSGA-II crowding distance (Chu and Yu 2018)."""
