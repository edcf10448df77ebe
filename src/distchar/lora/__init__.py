"""LoRA initialisations: PEFT's, and ours reshaped by the generator.

``registry`` names every init and its properties (free of torch); ``inits`` makes them. The
package re-exports nothing, so that importing the registry does not import torch.
"""
