"""Pretraining the offline foundation stack: EgoVideo-mini (the frozen video-text encoder, in EgoVideo's role)
and a cpu-small GR00T N1.5 action head (in the role of GR00T-N1.5-3B's), both on EgoSynth takes of seeds
disjoint from the benchmark's. ``egghand pretrain`` runs them; the results ship in egghand_lib/resources/weights
with model cards in data_cards/."""
