"""The foundation every feature stands on: settings, database, tables (the ORM), errors,
logs, the Celery client."""
