"""Stage 06's parts: the two tasks as tokenised examples, and the training loop."""
