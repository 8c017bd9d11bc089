"""The wire formats of what sites already call (Perspective, Coral's external moderation phase,
OpenAI's moderation endpoint), served over the same scoring and policy as queued comments."""
