"""Data: EgoExo4D reader, EgoSynth generator, windows, LeRobot datasets, feature cache."""
