#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BrokerStack } from '../broker-stack';
import { exitOnContextError } from '../deploy-context';

const app = new App();
exitOnContextError(() => new BrokerStack(app, 'ServerlessMqttBroker'));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
