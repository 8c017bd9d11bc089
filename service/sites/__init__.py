"""Sites (the tenants) and their API keys."""
