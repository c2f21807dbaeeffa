"""The diffusion family: DiffuRec and DiffuRecSys, their noise schedule, timestep samplers and Approximator, and the Transformer layers the baselines share."""
