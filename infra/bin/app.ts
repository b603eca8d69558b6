#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { BrokerStack } from '../broker-stack';

const app = new App();
new BrokerStack(app, 'ServerlessMqttBroker');
