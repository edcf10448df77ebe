"""Stage 07: what a trained run scores, and how inits compare."""
