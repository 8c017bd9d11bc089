"""How a site's policy turns scores into a verdict: effective policy, language, reason codes."""
