import numpy as np
import torch

from cardid.data.datasets import FolderDataset, GalleryDataset, OnlineViewDataset
from cardid.data.layout import EmbeddingDataConfig, write_embedding_dataset
from cardid.preprocess import get_preset

PRE = get_preset("tiny64")


def test_online_and_folder_datasets_return_identical_tensors(synth_catalog, tmp_path):
    cfg = EmbeddingDataConfig(train_views=2, val_views=1, seed=4)
    root = write_embedding_dataset(synth_catalog, tmp_path / "ds", cfg, workers=1)
    for split, n in (("train", 2), ("val", 1)):
        online = OnlineViewDataset(synth_catalog, PRE, views_per_card=n, split=split, cfg=cfg.photo, seed=4)
        folder = FolderDataset(root, split, PRE)
        assert len(online) == len(folder) == n * len(synth_catalog)
        for i in (0, len(folder) // 2, len(folder) - 1):
            (a, la), (b, lb) = online[i], folder[i]
            assert la == lb
            assert a.dtype == torch.float32 and a.shape == (3, 64, 64)
            assert torch.equal(a, b)


def test_online_views_change_with_epoch_and_are_reproducible(synth_catalog):
    ds = OnlineViewDataset(synth_catalog, PRE, views_per_card=2, seed=0)
    a, _ = ds[3]
    ds.set_epoch(1)
    b, _ = ds[3]
    ds.set_epoch(0)
    assert torch.equal(ds[3][0], a) and not torch.equal(a, b)
    assert [ds[i][1] for i in range(4)] == [0, 0, 1, 1]


def test_gallery_dataset_is_the_clean_scans_in_class_order(synth_catalog):
    ds = GalleryDataset(synth_catalog, PRE)
    x, label = ds[5]
    assert label == 5
    np.testing.assert_array_equal(
        x.numpy(), PRE(synth_catalog.load_image(synth_catalog.class_index.idx_to_class[5]))
    )


def test_works_with_a_dataloader_and_workers(synth_catalog):
    ds = OnlineViewDataset(synth_catalog, PRE, views_per_card=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    xs, ys = next(iter(loader))
    assert xs.shape == (4, 3, 64, 64) and ys.tolist() == [0, 1, 2, 3]
