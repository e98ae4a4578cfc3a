"""Reports: periods, formats, renderers and atomic files shared by every `syncctl report`."""
