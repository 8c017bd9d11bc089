"""What the API and the web pages share: auth dependencies, error rendering, limits,
waiters, app state."""
