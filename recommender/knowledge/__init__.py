"""Static knowledge with sources: the deployment capability matrix and ecosystem priors."""
