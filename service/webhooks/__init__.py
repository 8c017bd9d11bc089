"""The site's webhook: its configuration, the events it is sent, and their signed delivery."""
