"""Models: trunks, the multimodal head, and weight import."""
