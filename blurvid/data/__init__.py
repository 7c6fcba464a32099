"""Training-data synthesis: blurred images with their N sharp frames and true displacement fields."""
