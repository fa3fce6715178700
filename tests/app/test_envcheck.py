from advmri.app.envcheck import forbidden_packages


def test_no_torchvision_or_nvidia_packages():
    assert forbidden_packages() == []


def test_fastmri_core_imports_without_lightning():
    import fastmri
    from fastmri.data import SliceDataset  # noqa: F401
    from fastmri.models import Unet, VarNet  # noqa: F401

    assert fastmri.fft2c is not None
