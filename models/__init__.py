"""The diffusion family (DiffuRec, DiffuRecSys): not built yet."""
