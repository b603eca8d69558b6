/** Local stand-ins for what AWS provides: a region name and credentials that sign requests nobody checks. */
export const LOCAL_REGION = 'local';
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };
