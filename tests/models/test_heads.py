import math

import torch
import torch.nn.functional as F

from cardid.models.heads import ArcFace


def test_margin_lowers_only_the_target_logit():
    head = ArcFace(8, 5, margin=0.5, scale=10)
    emb = F.normalize(torch.randn(4, 8), dim=1)
    y = torch.tensor([0, 1, 2, 3])
    loss, cos = head(emb, y)
    plain = F.cross_entropy(cos * 10, y)
    assert loss > plain  # the margin makes the task harder
    theta = torch.acos(cos[torch.arange(4), y])
    expected = torch.where(theta < math.pi - 0.5, torch.cos(theta + 0.5), cos[torch.arange(4), y] - head.mm)
    assert torch.isfinite(expected).all()


def test_stable_at_cos_plus_and_minus_one():
    head = ArcFace(4, 3, margin=0.5, scale=64)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3, 4))
    emb = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]], requires_grad=True)
    loss, _ = head(emb, torch.tensor([0, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()


def test_subcenter_takes_the_closest_center():
    head = ArcFace(4, 2, subcenters=3)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[1, 2] = 1.0  # class 0, sub-center 1 points along e2
        head.weight[3, 0] = 1.0  # class 1, sub-center 0 points along e0
    cos = head.cosine(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    assert cos.shape == (1, 2) and cos[0, 0] > 0.99 and abs(cos[0, 1]) < 1e-6


def test_training_the_head_separates_classes():
    torch.manual_seed(0)
    head = ArcFace(16, 4, margin=0.3, scale=16)
    centers = F.normalize(torch.randn(4, 16), dim=1)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(100):
        y = torch.randint(0, 4, (32,))
        emb = F.normalize(centers[y] + 0.1 * torch.randn(32, 16), dim=1)
        loss, _ = head(emb, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (head.cosine(centers).argmax(1) == torch.arange(4)).all()
