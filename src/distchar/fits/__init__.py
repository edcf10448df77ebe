"""Heavy-tailed fits: the power law with its xmin (Clauset, Shalizi, Newman 2009) and its rivals."""
