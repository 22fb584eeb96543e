"""The IPython magics (%imagegen, %%imageedit, %%storyboard, %imagenb): thin glue."""
