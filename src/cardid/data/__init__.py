"""Dataset layouts and PyTorch datasets (no models)."""

from cardid.data.layout import EmbeddingDataConfig, read_split, write_embedding_dataset
from cardid.synth.views import ViewRenderer

__all__ = ["EmbeddingDataConfig", "ViewRenderer", "read_split", "write_embedding_dataset"]
