"""Models: encoders, fusion heads and the multimodal model with a unimodal head per modality."""
