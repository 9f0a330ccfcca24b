DROP TABLE notify_cursors;
DROP TABLE outbox;
