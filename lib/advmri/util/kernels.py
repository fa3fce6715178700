"""The Jupyter kernels advmri starts (papermill runs of the notebooks) talk to it over CurveZMQ-encrypted TCP.

Since ipykernel 7.4 a kernel warns on every start that it ``is running over TCP without encryption`` unless
its manager provisions CurveZMQ keys (jupyter_client's ``transport_encryption``, default ``disabled``). The
main job starts a kernel per notebook and per sweep run, so the warning was most of its output. Passing
:class:`EncryptedKernelManager` as papermill's ``kernel_manager_class`` turns encryption on where pyzmq has
Curve support (``auto``), which removes the warning's cause rather than hiding the message.
"""

from __future__ import annotations

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

__all__ = ["EncryptedKernelManager"]


class EncryptedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager with ``transport_encryption = "auto"`` (when pyzmq has Curve)."""

    @default("transport_encryption")
    def _default_transport_encryption(self) -> str:
        return "auto" if zmq.has("curve") else "disabled"
