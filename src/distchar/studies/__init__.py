"""The companion studies: What Are the Odds? (odds), and later the DSL and NSGA-II studies."""
