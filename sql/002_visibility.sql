-- Who may see what without an admin token (src/store/scope.h,
-- docs/visibility.md): the one definition every public read of runs and
-- images goes through. Privacy belongs to albums: a run is visible while it
-- has no album or when its album is public; an image when it is in a
-- public album or belongs to a visible run.
CREATE VIEW public_runs AS
    SELECT r.id FROM runs r
    WHERE r.album_id IS NULL
       OR EXISTS (SELECT 1 FROM albums a WHERE a.id = r.album_id AND a.is_public);

CREATE VIEW public_images AS
    SELECT i.id FROM images i
    WHERE EXISTS (SELECT 1 FROM album_images ai JOIN albums a ON a.id = ai.album_id
                  WHERE ai.image_id = i.id AND a.is_public)
       OR EXISTS (SELECT 1 FROM public_runs pr WHERE pr.id = i.run_id);
