"""Network building blocks (no losses, no training loops)."""
