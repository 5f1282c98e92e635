"""The noise process: x0-prediction diffusion around diffusers' DDIM scheduler.

The denoiser predicts the clean sample ``x0`` (``prediction_type="sample"``) under a cosine
schedule (``squaredcos_cap_v2``, Nichol & Dhariwal 2021) with ``T = 1000`` training steps. Sampling
is deterministic DDIM (``eta = 0``) with ``timestep_spacing="trailing"``, so any number of steps
starts at ``t = T-1``, where ``x_t`` is (numerically) pure noise. The update itself is
``diffusers.DDIMScheduler.step``; this module only fixes the configuration and the
training-time distribution of ``t``.

Example::

    >>> import torch
    >>> from semsim.nn.diffusion import Diffusion
    >>> diffusion = Diffusion()
    >>> x0 = torch.zeros(4, 3, 8, 8)
    >>> t = diffusion.sample_timesteps(4, "cpu")
    >>> x_t = diffusion.add_noise(x0, torch.randn_like(x0), t)
    >>> denoise = lambda x_t, t: 0.5 * x_t.clamp(-1, 1)  # predicts x0 from (x_t, t)
    >>> diffusion.sample(denoise, (4, 3, 8, 8), steps=1, device="cpu").shape
    torch.Size([4, 3, 8, 8])
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch


class Diffusion:
    """x0-prediction diffusion: training-time noising and DDIM sampling.

    :param num_train_timesteps: ``T``, the number of discrete noise levels ``t = 0 .. T-1``.
    :param last_step_prob: probability that :meth:`sample_timesteps` draws ``t = T-1`` instead of
        a uniform ``t`` (see there why).
    """

    def __init__(self, num_train_timesteps: int = 1000, last_step_prob: float = 0.25):
        from diffusers import DDIMScheduler

        if num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be >= 1, got {num_train_timesteps}")
        if not 0.0 <= last_step_prob <= 1.0:
            raise ValueError(f"last_step_prob must be in [0, 1], got {last_step_prob}")
        self.num_train_timesteps = int(num_train_timesteps)
        self.last_step_prob = float(last_step_prob)
        # set_alpha_to_one: the last DDIM step lands on the x0 prediction itself
        self.scheduler = DDIMScheduler(num_train_timesteps=self.num_train_timesteps,
                                       beta_schedule="squaredcos_cap_v2", prediction_type="sample",
                                       clip_sample=False, set_alpha_to_one=True,
                                       timestep_spacing="trailing")

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """``[T]`` float32, ``alpha_bar_t``: ``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``."""
        return self.scheduler.alphas_cumprod

    def sample_timesteps(self, batch: int, device: torch.device | str,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Training time steps: uniform over ``0 .. T-1``, but ``T-1`` with probability ``last_step_prob``.

        At ``t = T-1`` the input ``x_t`` carries (numerically) no information about ``x0``, so the
        x0-prediction there is the MMSE estimate of ``x0`` given the conditioning alone, and it is
        exactly what 1-step sampling returns. Uniform ``t`` would train it on 1/T of the samples;
        the extra weight makes the 1-step decoder good while the other steps still see all noise
        levels.

        :param batch: number of samples ``B``.
        :param device: device of the result (and of ``generator``, if given).
        :param generator: optional torch generator for reproducible draws.
        :returns: ``[B]`` int64 time steps in ``0 .. T-1``.
        """
        last = self.num_train_timesteps - 1
        t = torch.randint(0, self.num_train_timesteps, (batch,), generator=generator, device=device)
        pick_last = torch.rand(batch, generator=generator, device=device) < self.last_step_prob
        return torch.where(pick_last, torch.full_like(t, last), t)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process ``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``.

        :param x0: ``[B, ...]`` float clean samples (scaled to about [-1, 1] by the caller).
        :param noise: like ``x0``, standard Gaussian.
        :param t: ``[B]`` int64 time steps in ``0 .. T-1``.
        :returns: ``x_t``, like ``x0``.
        """
        return self.scheduler.add_noise(x0, noise, t.to(x0.device))

    def sample(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple[int, ...],
               steps: int, device: torch.device | str, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Deterministic DDIM sampling (``eta = 0``) from ``x_T ~ N(0, I)``.

        Gradients are not disabled here; wrap the call in ``torch.inference_mode()`` for inference.

        :param denoise: ``denoise(x_t, t) -> x0_hat``: ``x_t`` of ``shape``, ``t`` a ``[B]`` int64
            tensor of one time step; returns the predicted clean sample, of ``shape``.
        :param shape: ``(B, ...)``, the sample shape.
        :param steps: number of denoiser calls, ``1 .. T``; they run at the trailing time steps
            ``T-1, T-1-T/steps, ...`` (1 step: ``denoise(x_T, T-1)`` alone).
        :param device: device of the samples (and of ``generator``, if given).
        :param generator: optional torch generator for ``x_T``.
        :param dtype: dtype of ``x_T``.
        :returns: the last x0 prediction, of ``shape`` and the denoiser's dtype.
        """
        if not 1 <= steps <= self.num_train_timesteps:
            raise ValueError(f"steps must be in 1..{self.num_train_timesteps}, got {steps}")
        # set_timesteps and step keep state on the scheduler: one copy per call
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(steps, device=device)
        x_t = torch.randn(shape, generator=generator, device=device, dtype=dtype) * scheduler.init_noise_sigma
        x0_hat = x_t
        for t in scheduler.timesteps:
            x0_hat = denoise(x_t, torch.full((shape[0],), int(t), device=device, dtype=torch.long))
            out = scheduler.step(x0_hat, t, x_t, eta=0.0)
            x_t = out.prev_sample
        return x0_hat
