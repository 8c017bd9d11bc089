"""The ML model in the service: registry, hot-swapping holder, labels, retraining, promotion,
shadow, calibration."""
