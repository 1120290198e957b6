"""The HTTP API: one blueprint per resource, typed routes, problem+json errors."""
