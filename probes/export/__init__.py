"""Deployment checks, parent side: which targets exist, what a check reports, running them."""
