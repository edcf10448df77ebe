"""The companion studies: What Are the Odds? (odds, study 08), the distribution-restrained softmax loss
under attack (robustness, study 09), NSGA-II crowding distances (nsga2, study 10)."""
