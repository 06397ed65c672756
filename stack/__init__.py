"""Native launcher: MariaDB, SeaweedFS S3, every service under gunicorn and nginx as the
gateway, all on loopback, data under ``var/<stack>/``. ``make up`` runs it under supervisord
(``supervision.py``);
the test fixtures reuse the same pieces on other ports."""
