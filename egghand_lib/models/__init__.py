"""EggHand models: encoders, adapters and the GR00T flow-matching action decoder."""
