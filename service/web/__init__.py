"""The server-rendered web questionnaire (Jinja, no build step)."""
