#!/bin/sh
# Writes Mosquitto's password file from the environment (docker/.env), then runs the broker.
#   MQTT_AGGREGATOR_PASSWORD            the aggregator's account "aggregator"
#   MQTT_SITES                          site ids, space separated (each is a user name)
#   MQTT_SITE_PASSWORDS                 their passwords, space separated, in the same order
# The file lives in the container only; the values never touch the repository.
set -eu
umask 077
mkdir -p /mosquitto/auth
passwd=/mosquitto/auth/passwd
: > "$passwd"
mosquitto_passwd -b "$passwd" aggregator "$MQTT_AGGREGATOR_PASSWORD"
set -- $MQTT_SITE_PASSWORDS
for site in $MQTT_SITES; do
  if [ "$#" -eq 0 ]; then
    echo "MQTT_SITE_PASSWORDS has fewer entries than MQTT_SITES" >&2
    exit 1
  fi
  mosquitto_passwd -b "$passwd" "$site" "$1"
  shift
done
chown -R mosquitto:mosquitto /mosquitto/auth
exec mosquitto -c /mosquitto/config/mosquitto.conf
