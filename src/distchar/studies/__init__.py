"""The companion studies: What Are the Odds? (odds), DSL under attack (robustness), NSGA-II crowding (moo)."""
