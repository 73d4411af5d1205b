"""Video-text encoders behind one interface (base.VideoTextEncoder)."""
