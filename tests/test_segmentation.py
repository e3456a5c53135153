import pytest
import torch

from ganlib.errors import GanlibError
from ganlib.segmentation import SegNet, confusion_matrix, resize_ids, resize_photos, scores, segmentation_score


def test_confusion_and_scores_against_hand_computed_values():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    conf = confusion_matrix(pred, target, num_classes=3)
    assert conf.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]  # the 255 pixel is skipped
    s = scores(conf)
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)
    assert s["mean_class_accuracy"] == pytest.approx((1 / 2 + 3 / 3 + 1 / 2) / 3)
    # IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 3 / (3 + 4 - 3) = 3/4; class 2: 1 / (2 + 1 - 1) = 1/2
    assert s["mean_iou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert s["class_iou"] == [round(1 / 3, 4), 0.75, 0.5]


def test_classes_absent_everywhere_do_not_count_in_the_means():
    conf = confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]), num_classes=4)
    s = scores(conf)
    assert s["mean_iou"] == 1.0 and s["mean_class_accuracy"] == 1.0
    assert s["class_iou"] == [1.0, 1.0, None, None]


def test_a_class_predicted_but_absent_from_the_truth_counts_as_iou_zero():
    s = scores(confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 0]), num_classes=3))
    assert s["class_iou"] == [0.5, None, 0.0]
    assert s["mean_iou"] == pytest.approx(0.25)
    assert s["mean_class_accuracy"] == pytest.approx(0.5)  # only the true class 0 has an accuracy


def test_errors_name_the_problem():
    with pytest.raises(GanlibError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(GanlibError, match="empty"):
        scores(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(GanlibError, match="multiples of 8"):
        SegNet(features=4)(torch.zeros(1, 3, 30, 32))


def test_segnet_shapes():
    net = SegNet(num_classes=19, features=4).eval()
    assert net(torch.zeros(2, 3, 64, 128)).shape == (2, 19, 64, 128)


def test_resizing_keeps_ids_ids_and_smooths_photos():
    ids = torch.tensor([[[0, 1], [2, 3]]]).repeat_interleave(4, 1).repeat_interleave(4, 2)
    small = resize_ids(ids, 2)
    assert small.tolist() == [[[0, 1], [2, 3]]]
    photos = torch.zeros(1, 3, 8, 8)
    photos[..., ::2] = 1
    out = resize_photos(photos, 4)  # antialiased: stripes average out to about 0.5, not a sampled 0 or 1
    assert out.shape == (1, 3, 4, 4) and torch.allclose(out, torch.full_like(out, 0.5), atol=0.1)


class ChannelOracle(torch.nn.Module):
    """A 'segmenter' that reads the class from the photo's first channel: a perfect one for these photos."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        ids = ((x[:, 0] + 1) * 2).round().long()  # photos encode ids 0..3 as -1, -0.5, 0, 0.5
        return torch.nn.functional.one_hot(ids, 19).permute(0, 3, 1, 2).float()


def test_segmentation_score_is_perfect_for_an_oracle_and_worse_for_shuffled_photos():
    torch.manual_seed(0)
    ids = torch.randint(0, 4, (2, 16, 16)).repeat_interleave(2, 1).repeat_interleave(2, 2)
    photos = (ids.float() / 2 - 1)[:, None].repeat(1, 3, 1, 1)
    perfect = segmentation_score(ChannelOracle(), [(photos, ids)], size=32)
    assert perfect["pixel_accuracy"] == 1.0 and perfect["mean_iou"] == 1.0
    shuffled = segmentation_score(ChannelOracle(), [(photos.flip(-1), ids)], size=32)
    assert shuffled["mean_iou"] < 0.5
