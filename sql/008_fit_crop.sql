-- 008_fit_crop: a run's "fit" ("exact", the default: the image is kept at the
-- size the server returned; "crop": an image larger than asked in both
-- dimensions is centre-cropped to the asked size), and on each image the
-- size the server returned before such a crop ("128x64"; NULL when the
-- image was not cropped). Servers such as stable-diffusion.cpp's sd-server
-- align sizes up (docs/backends.md, "Sizes").
ALTER TABLE runs ADD COLUMN fit TEXT NOT NULL DEFAULT 'exact' CHECK (fit IN ('exact', 'crop'));
ALTER TABLE images ADD COLUMN cropped_from TEXT;
