"""One module per pipeline stage: it reads the previous stage's files, calls the library, and
writes its own outputs (whole or not at all), figures included. The notebooks call these."""
