"""Training: the paper's two-stage protocol (autoencoder, then BIE) and the deblurring module."""
