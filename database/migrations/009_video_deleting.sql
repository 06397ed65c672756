-- Deleting a video (upload-svc ingest.remove_video) marks it 'deleting' in a short
-- transaction, removes its objects without holding any row lock (those are HTTP calls to
-- file-svc), then deletes the row. Every reader treats 'deleting' as gone; a worker that
-- wrote objects for the video re-reads the status afterwards and removes what it wrote.
ALTER TABLE videos
  MODIFY status ENUM('uploading','queued','processing','ready','failed','deleting') NOT NULL DEFAULT 'uploading';
