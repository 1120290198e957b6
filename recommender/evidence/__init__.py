"""What a recommendation is scored on, gathered in three modes: measure, cached, predict."""
