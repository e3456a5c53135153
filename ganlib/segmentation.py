"""A small segmentation network to score generated street photos: an "FCN-score" analogue.

pix2pix (Isola et al. 2017, section 4.2) measures label -> photo quality by running an
off-the-shelf semantic segmentation network (FCN-8s trained on real Cityscapes) on the
generated photos and comparing its prediction with the label map they were generated from:
if the photo is realistic enough, a network trained on real photos recognises the classes
where the label map put them. SPADE reports the same idea with DRN-D-105 (mIoU and pixel
accuracy). Here no pretrained segmenter can be downloaded, so the notebook trains this one on
real (embedded or Cityscapes) photos and reports its score on the real test photos too: the
ceiling a perfect generator would reach.

Scores (Cityscapes convention, trainIds 0..18, 255 ignored):
    pixel accuracy      = sum_c TP_c / (labelled pixels)
    mean class accuracy = mean_c TP_c / (pixels of class c)          (pix2pix's "per-class acc.")
    mean IoU            = mean_c TP_c / (TP_c + FP_c + FN_c)         (mean over classes present)
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.cityscapes import IGNORE_INDEX, NUM_CLASSES
from ganlib.errors import GanlibError


def _double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegNet(nn.Module):
    """A small U-Net: photo (N, 3, H, W) in [-1, 1] -> class logits (N, num_classes, H, W).

    Three 2x max-pool downsamplings (widths f, 2f, 4f, 8f), bilinear upsampling with skip
    concatenations, a 1x1 classifier. H and W must be multiples of 8.
    """

    def __init__(self, num_classes=NUM_CLASSES, features=16, in_channels=3):
        super().__init__()
        f = features
        self.enc = nn.ModuleList([_double_conv(in_channels, f), _double_conv(f, 2 * f),
                                  _double_conv(2 * f, 4 * f), _double_conv(4 * f, 8 * f)])
        self.dec = nn.ModuleList([_double_conv(8 * f + 4 * f, 4 * f), _double_conv(4 * f + 2 * f, 2 * f),
                                  _double_conv(2 * f + f, f)])
        self.classifier = nn.Conv2d(f, num_classes, 1)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.enc[0][0].in_channels or x.shape[2] % 8 or x.shape[3] % 8:
            raise GanlibError(f"SegNet expects photos (N, {self.enc[0][0].in_channels}, H, W) with H and W "
                              f"multiples of 8, got {tuple(x.shape)}; resize them with segmentation.resize_photos.")
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.dec, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.classifier(x)


def resize_photos(images, size):
    """Photos (N, 3, H, W) -> (N, 3, *size), antialiased bilinear (area-like when shrinking)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_ids(ids, size):
    """trainId maps (N, H, W) -> (N, *size), nearest neighbour so ids stay ids."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(ids.shape[1:]) == size:
        return ids
    return F.interpolate(ids[:, None].float(), size=size, mode="nearest")[:, 0].long()


def confusion_matrix(pred, target, num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX):
    """(num_classes, num_classes) counts, rows = true class, columns = predicted; ignore pixels skipped."""
    if pred.shape != target.shape:
        raise GanlibError(f"confusion_matrix: prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                          "must have the same shape (argmax the logits over dim 1 first).")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    index = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes).cpu()


def scores(confusion):
    """Pixel accuracy, mean class accuracy and mean IoU from a confusion matrix (rows = truth).

    Classes absent from both the truth and the prediction have no IoU and are left out of the
    means (the Cityscapes convention); per-class IoUs come back as a list with None for those.
    """
    confusion = confusion.double()
    tp = confusion.diag()
    truth, predicted = confusion.sum(1), confusion.sum(0)
    union = truth + predicted - tp
    total = confusion.sum()
    if total == 0:
        raise GanlibError("scores: the confusion matrix is empty (every pixel was ignore_index).")
    present = truth > 0
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    return dict(pixel_accuracy=(tp.sum() / total).item(),
                mean_class_accuracy=(tp[present] / truth[present]).mean().item(),
                mean_iou=iou[union > 0].mean().item(),
                class_iou=[None if torch.isnan(v) else round(v.item(), 4) for v in iou])


@torch.no_grad()
def segmentation_score(net, batches, size, num_classes=NUM_CLASSES, device=None):
    """Score `net` on an iterable of (photos (N, 3, H, W) in [-1, 1], trainIds (N, H, W)) batches.

    Photos and ids are resized to `size` (the network's working resolution) first. Returns scores().
    """
    was_training = net.training
    net.eval()
    device = device or next(net.parameters()).device
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for photos, ids in batches:
        logits = net(resize_photos(photos.to(device).float(), size))
        confusion += confusion_matrix(logits.argmax(1), resize_ids(ids.to(device), size), num_classes)
    net.train(was_training)
    return scores(confusion)
