"""EggHand toolkit."""
